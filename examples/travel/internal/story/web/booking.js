// The booking view of the travel app's web resources (version 1).
document.querySelectorAll("#trips li").forEach(function (li) {
  li.addEventListener("click", function () { location.hash = "pay"; });
});
